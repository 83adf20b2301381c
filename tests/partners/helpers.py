"""What partner tests share."""

from __future__ import annotations

# The joint view a partner reads of a member linked to it, key for key: no personal data among them.
JOINT_VIEW = {
    "partner_customer_ref",
    "member_id",
    "status",
    "tier",
    "paid_plans",
    "points",
    "grants",
    "linked_at",
}
