"""The programme's figures for finance and marketing: points issued, redeemed, expired and adjusted, what the
programme owes, breakage, members; all from set-based SQL over the ledger and the tables, on both
databases."""
