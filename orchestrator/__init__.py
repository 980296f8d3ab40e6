"""The controller side of mason: everything that runs on the user's machine."""
