"""RFM: each member's recency, frequency and monetary scores over the programme's window, and the named
segment they put the member in, recomputed by a job with set-based SQL."""
