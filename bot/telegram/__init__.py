"""The Telegram front end: the app and its handlers, the HTML rendering, the access guards."""
