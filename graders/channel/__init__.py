"""The narrow channel between the grader and a sandboxed kernel.

Values, calls and their results cross only as JSON and safetensors files in the kernel's scratch
folder, size-capped and read without following symlinks; nothing the kernel wrote is ever
unpickled or imported here. A dead or hung kernel fails closed with ``ChannelError``.
"""
from graders.channel.errors import ChannelError, StudentError

__all__ = ["Channel", "ChannelError", "StudentError"]


def __getattr__(name):
    if name == "Channel":
        from graders.channel.client import Channel

        return Channel
    raise AttributeError(name)
