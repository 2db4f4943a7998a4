"""DSCP code points by number or by name, as routers' configurations write them.

The names are the standard per-hop behaviours: default forwarding (``df``, RFC 2474),
class selectors ``cs0``..``cs7`` (RFC 2474 §4.2.2), assured forwarding ``afXY``
(RFC 2597: class X 1..4, drop precedence Y 1..3, code point 8X + 2Y), expedited
forwarding ``ef`` (RFC 3246), ``voice-admit`` (RFC 5865) and lower effort ``le``
(RFC 8622); RFC 4594 says which traffic each is for.
"""

from __future__ import annotations

DSCP_NAMES: dict[str, int] = {
    "df": 0,
    **{f"cs{selector}": selector << 3 for selector in range(8)},
    **{
        f"af{klass}{drop}": (klass << 3) | (drop << 1)
        for klass in range(1, 5)
        for drop in range(1, 4)
    },
    "ef": 46,
    "voice-admit": 44,
    "le": 1,
}
MAX_DSCP = 63


def parse_dscp(text: str, field_name: str = "dscp") -> int:
    """The code point ``text`` names: a decimal number 0..63 or a name of
    :data:`DSCP_NAMES`, in any case; ValueError naming ``field_name`` otherwise. (A TOS
    byte is not a DSCP: TOS 184 is DSCP 46, ``ef``.)"""
    spelled = text.strip().lower()
    if spelled in DSCP_NAMES:
        return DSCP_NAMES[spelled]
    value = int(spelled) if spelled.isdigit() and spelled.isascii() else -1
    if not 0 <= value <= MAX_DSCP:
        raise ValueError(
            f"{field_name}: must be 0..{MAX_DSCP} or a name (df, cs0..cs7, af11..af43, ef, "
            f"voice-admit, le), got {text!r}"
        )
    return value
