"""Sources: pull records from RMS, jail and EHR systems into the typed record model."""
