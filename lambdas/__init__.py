"""Lambda handlers for pipeline steps and deployment hooks: parse the event into a
typed model, call ``rankops``, return a dict. No logic of their own."""
