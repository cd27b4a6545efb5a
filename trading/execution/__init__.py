"""The execution core: from a decision to an order on the wire, and from a fill to the ledger.

- ``sender``: journal row, send, ask when the outcome is unknown; a typed outcome back.
- ``tracker``: the one owner of what is in flight per position.
- ``ledger``: the only writer of positions, fills, cooldowns, daily statistics and the book.
- ``backstop``: the keeper of each position's exchange-side stop.
- ``resolver``: unresolved journal rows settled against the exchange (order-safety rule 3).
- ``refusals``: refused orders back off; entries hold a reservation until they fill or fail.

``trading/executor.py`` holds the per-symbol locks and dispatches to these.
"""
