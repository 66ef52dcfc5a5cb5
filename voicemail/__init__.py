"""voicemail package."""
