"""BookingNotification golden file (the mapping the demo runs), next to the other message types'."""
from __future__ import annotations

from mapping_cases import BOOKING, SHARED_ID, check_golden, header

from transforms.mapping import BUILDERS


def test_booking_matches_golden_and_validates():
    message = BUILDERS["BookingNotification"].build(BOOKING, SHARED_ID, header("BookingNotification"))
    check_golden(message, "booking-notification")
