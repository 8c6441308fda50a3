"""The audit you can prove: the hash chain of each order's events (domain/hash_chain.py), the
checkpoints over the notification log (`checkpoints`), and `otc audit verify` (`verify`,
`report`), which recomputes both from what is stored. See README, "Audit you can prove"."""
