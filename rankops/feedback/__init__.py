"""The feedback log: what every answer showed, and what users then did (``docs/feedback.md``)."""
