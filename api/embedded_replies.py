"""Fix F to nx-27017, applied by `api.embedded_fixes` inside the embedded stand-in's process.

nx-27017 encodes its reply only once the command has run, and when the result holds a value BSON
cannot (an integer past 64 bits, from `{"$pow": [10, 400]}` in an aggregation, say) it logs the
failure and sends nothing: the client's connection then waits for ever, and enough such requests
hold every pooled connection of the API. MongoDB answers an error instead; with this fix so does
the stand-in, with the error it would have had from the command itself.

Like fix E it applies whatever nx-27017's version, as it only answers where nothing was sent.
"""

import logging
from typing import Any

logger = logging.getLogger(__name__)
_PATCHED = "__cabinet_patched__"
# MongoDB's code for a value out of the range its type allows.
OVERFLOW_CODE = 15


def apply() -> bool:
    """Wraps nx-27017's reply builder so that a reply it cannot encode becomes an error reply."""
    try:
        from nx_27017.wire_protocol import ResponseBuilder

        original = ResponseBuilder.build_op_msg_reply
    except (ImportError, AttributeError) as error:
        logger.error("nx-27017 internals moved (%s): unencodable replies are not answered", error)
        return False
    if getattr(original, _PATCHED, False):
        return True

    def build_op_msg_reply(
        request_id: int, response_to: int, document: dict[str, Any], flags: int = 0
    ) -> bytes:
        try:
            return original(request_id, response_to, document, flags)
        except Exception as error:  # whatever the encoder refuses, the client still gets a reply
            refusal = {"ok": 0, "errmsg": f"the result cannot be encoded: {error}"}
            refusal |= {"code": OVERFLOW_CODE, "codeName": "Overflow"}
            answer: bytes = original(request_id, response_to, refusal, flags)
            return answer

    setattr(build_op_msg_reply, _PATCHED, True)
    ResponseBuilder.build_op_msg_reply = staticmethod(build_op_msg_reply)
    return True
