"""The CLI's command groups, one module per area. Each module imports only typer at import time and
exposes ``register(app)``; heavy imports happen inside the commands so ``niem-exchange --help`` stays fast.
"""
