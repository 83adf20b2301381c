"""A member's profile: enrolment, look-ups, changes, closing and erasure, and the `/v1/members` routes. The
member's record, which every other domain builds on, is in `members`."""
