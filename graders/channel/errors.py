"""Errors of the channel; the plugin scores them (ChannelError: error, StudentError: failed)."""


class ChannelError(Exception):
    """The kernel could not answer: it is gone, it hung, or its answer broke the rules."""


class StudentError(ChannelError):
    """The student's own code raised while answering; carries the exception's name and text."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = ename, evalue
