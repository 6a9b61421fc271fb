"""Who is asking: the (account, user) a token was issued for."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    account_id: int
    user_id: int
