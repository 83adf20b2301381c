"""The export document: everything the service holds about one member, for a data-subject access request.

A format of its own, versioned by `format_version`, rather than the REST replies put together: those change
with the API, and an export written today must still read the same way when it is compared with one written
later. A change that removes or renames a field, or changes what one means, raises `FORMAT_VERSION`; a new
field does not.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from loyalty_api.http.schemas import MoneyRead, ReadModel, TierRef
from loyalty_api.members.lifecycle import Stage
from loyalty_api.members.models import MemberStatus

FORMAT_VERSION: Final = 1


class ExportProfile(BaseModel):
    """The member's record, personal data decrypted."""

    member_number: str = Field(description="The card number: ten digits, the last a Luhn check digit.")
    status: MemberStatus
    phone: str | None = Field(description="In E.164.")
    email: str | None = Field(description="Lower-cased.")
    name: str | None
    birthday: date | None
    channel: str = Field(description="Where the member joined: store, online, app, …")
    created_at: datetime = Field(description="When the member enrolled.")
    updated_at: datetime


class ExportExternalId(BaseModel):
    """The member's id in another system (a POS, a web shop, a CRM)."""

    system: str
    external_id: str


class ExportIdentifiers(BaseModel):
    """How other systems and other members know the member."""

    external_ids: list[ExportExternalId]
    referral_code: str = Field(description="The code the member gives friends to enrol with.")
    referred_by: uuid.UUID | None = Field(
        description="The id of the member whose referral code this member enrolled with (only the id: the "
        "referrer's data is theirs)."
    )


class ExportLinkConsent(BaseModel):
    """A consent the member gave at our till or shop to be linked with a partner: a link code (the code itself
    is a credential and is not kept)."""

    partner: str = Field(description="The partner's code.")
    grants: list[str] = Field(description="What the member let the partner see: `basic`, `points`.")
    given_at: datetime
    expires_at: datetime
    used_at: datetime | None = Field(description="When the partner linked with it (null: never).")


class ExportConsents(BaseModel):
    marketing_consent: bool
    leaderboard_opt_in: bool = Field(description="Whether the member shows on the points leaderboard.")
    partner_link_consents: list[ExportLinkConsent] = Field(description="Oldest first.")


class ExportLedgerEntry(BaseModel):
    """One change to the member's points, as the append-only ledger recorded it."""

    id: uuid.UUID
    type: str = Field(
        description="earn, redeem, hold, capture, release, refund, expire, adjust, reward, exchange_out, "
        "exchange_return, exchange_in, referral, activity, campaign, transfer_out, transfer_in, "
        "transfer_return or import."
    )
    amount: int = Field(description="Signed change to the balance, in points.")
    balance_after: int
    held_change: int = Field(description="Signed change to the points on hold.")
    held_after: int
    order_ref: str | None
    hold_id: uuid.UUID | None
    partner_id: uuid.UUID | None = Field(description="The partner it was earned at or exchanged with.")
    details: dict[str, Any] = Field(
        description="The rule breakdown of an earn, an adjustment's reason, … (a referrer's referral entry "
        "leaves out the friend's id and order: they are the friend's data)."
    )
    actor_key_id: uuid.UUID | None = Field(description="The API key that made the change.")
    created_at: datetime


class ExportLot(BaseModel):
    """Points credited together, spent oldest expiry first and expiring together; spent lots too."""

    id: uuid.UUID
    entry_id: uuid.UUID = Field(description="The ledger entry that credited them.")
    order_ref: str | None
    points: int
    remaining: int
    created_at: datetime
    expires_at: datetime | None = Field(description="Null: never.")


class ExportHold(BaseModel):
    """Points reserved for a checkout, and what became of them."""

    id: uuid.UUID
    order_ref: str
    points: int
    captured_points: int
    status: Literal["active", "captured", "released", "expired"]
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None


class ExportPoints(BaseModel):
    """The points account and everything behind it. The balance is the sum of the ledger's amounts."""

    balance: int
    held: int
    available: int = Field(description="Balance less held.")
    lifetime_earned: int
    ledger: list[ExportLedgerEntry] = Field(description="Every entry, oldest first.")
    lots: list[ExportLot] = Field(description="Oldest first.")
    holds: list[ExportHold] = Field(description="Oldest first.")


class ExportOrder(BaseModel):
    """One of the member's orders: a purchase that earned (at our stores or at a partner), an order paid with
    points, or both; with what refunds took back and gave back. These are the member's activity records."""

    order_ref: str = Field(description="A partner's orders are under its code: `bookshop/<its ref>`.")
    partner_customer_ref: str | None = Field(
        description="A purchase at a partner: the partner's reference of the member it was made under."
    )
    total: MoneyRead | None = Field(description="The order's total (null: not known).")
    refunded: MoneyRead | None = Field(description="Refunded so far (null: the total is not known).")
    points_earned: int
    points_redeemed: int = Field(description="Redeemed or captured for the order.")
    points_taken_back: int
    points_given_back: int
    points_shortfall: int = Field(
        description="Earned points already spent when a refund came, not taken back."
    )
    purchased_at: datetime | None
    earned_at: datetime | None
    redeemed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ExportTierChange(BaseModel):
    """One change of the member's tier (or of how long they keep it), and why."""

    id: uuid.UUID
    from_tier: TierRef | None
    to_tier: TierRef
    change: str = Field(description="upgrade, downgrade, renewal, override or override_ended.")
    reason: str
    ladder_version: int | None
    qualification: dict[str, Any] = Field(description="What the member had when the change was decided.")
    kept_until: datetime | None
    created_at: datetime


class ExportTier(BaseModel):
    tier: TierRef | None
    since: datetime | None
    kept_until: datetime | None = Field(description="The tier is kept until then; the review looks after it.")
    override_until: datetime | None = Field(description="An operator set the tier by hand until then.")
    history: list[ExportTierChange] = Field(description="Every recorded change, oldest first.")


class ExportCoupon(BaseModel):
    """A coupon the member holds or held, from a reward, a birthday gift or a paid plan."""

    id: uuid.UUID
    code: str
    name: str
    kind: str
    properties: dict[str, Any] = Field(
        description="The offer's settings; money in minor units of `currency`."
    )
    currency: str
    status: Literal["active", "used", "expired"] = Field(description="As of `exported_at`.")
    valid_from: datetime
    valid_until: datetime
    used_at: datetime | None
    used_order_ref: str | None
    source_type: str = Field(description="What gave it: `reward`, `birthday_gift`, …")
    source_id: uuid.UUID | None
    created_at: datetime


class ExportRewardRedemption(BaseModel):
    """A reward bought with points."""

    id: uuid.UUID
    reward_id: uuid.UUID
    reward_name: str = Field(description="As the catalogue names it now.")
    points: int
    coupon_id: uuid.UUID = Field(description="The coupon it issued (in `coupons`).")
    ledger_entry_id: uuid.UUID
    created_at: datetime


class ExportPayment(BaseModel):
    """What billing told us about one fee."""

    id: uuid.UUID
    period: int
    status: str = Field(
        description="succeeded or failed, as billing reported it; unused: a success a cancel named for a "
        "refund."
    )
    payment_ref: str
    amount: MoneyRead
    recorded_at: datetime
    unused_at: datetime | None = Field(
        description="When a cancel named this fee `unused`: it paid ahead until then, and pays for nothing "
        "since, a resume or not. Null unless `status` is `unused`."
    )


class ExportSubscription(BaseModel):
    """A paid membership, and every payment billing reported for it."""

    id: uuid.UUID
    plan: str = Field(description="The plan's code.")
    plan_name: str
    family: str
    state: str = Field(description="trialing, active, past_due, canceled or expired.")
    period: int = Field(description="The current period: 0 is the trial.")
    period_start: datetime
    period_end: datetime
    trial_end: datetime | None
    price: MoneyRead = Field(description="The current period's price.")
    grace_until: datetime | None
    benefits_until: datetime | None
    pending_plan: str | None = Field(description="A downgrade waiting for the period's end.")
    payment_ref: str | None
    canceled_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime
    payments: list[ExportPayment] = Field(description="Oldest first.")


class ExportPartnerLink(BaseModel):
    """A partner's customer linked to the member, with what the member let it see."""

    partner: str
    partner_name: str
    partner_customer_ref: str = Field(description="The partner's own id of the member.")
    grants: list[str]
    linked_at: datetime


class ExportExchange(BaseModel):
    """Points moved between the member's account and their account in a partner's programme."""

    id: uuid.UUID
    partner: str
    partner_customer_ref: str
    direction: str = Field(description="`out`: our points to the partner; `in`: theirs to us.")
    status: str
    points: int = Field(description="Our points.")
    partner_points: int
    rate: Decimal = Field(description="A decimal string.")
    value: MoneyRead = Field(description="What our points were worth at the programme's point value.")
    partner_ref: str | None
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None


class ExportBenefitUse(BaseModel):
    """A joint benefit the member used at a partner, as the partner recorded it."""

    id: uuid.UUID
    partner: str
    benefit_id: uuid.UUID
    benefit_name: str = Field(description="As it was named when used.")
    use_ref: str = Field(description="The partner's id of the use.")
    used_at: datetime


class ExportPerk(BaseModel):
    """A partner's perk a paid plan gave the member: a code the partner redeems once."""

    code: str | None = Field(description="Null while the perk is owed.")
    partner: str
    name: str
    plan: str
    period: int
    source: str = Field(description="ours (a code we issued) or pool (one the partner uploaded).")
    status: str = Field(description="owed, issued or redeemed.")
    granted_at: datetime | None
    redeemed_at: datetime | None


class ExportPartners(BaseModel):
    links: list[ExportPartnerLink] = Field(description="Links standing now; an unlink deletes the link.")
    exchanges: list[ExportExchange] = Field(description="Oldest first.")
    benefit_uses: list[ExportBenefitUse] = Field(description="Oldest first.")
    perks: list[ExportPerk] = Field(description="Oldest first.")


class ExportLifecycle(BaseModel):
    stage: Stage
    since: datetime | None = Field(description="Null: not assessed yet.")


class ExportRfm(BaseModel):
    """The member's RFM scores (1–5, 5 the best) and segment, as the last run of the RFM job left them."""

    recency: int
    frequency: int
    monetary: int
    segment: str
    last_purchase_at: datetime | None
    purchases: int
    spend: MoneyRead = Field(description="Net spend in the window, in the programme's currency.")
    computed_at: datetime


class ExportReferralReward(BaseModel):
    """A referral the member was a side of: the referred friend's first qualifying purchase."""

    role: Literal["friend", "referrer"] = Field(
        description="`friend`: the member was referred; `referrer`: the member referred someone (who that "
        "is, is the friend's data and is not shown)."
    )
    points: int = Field(description="The member's side of the reward.")
    order_ref: str | None = Field(description="The member's purchase that earned it (null for a referrer).")
    status: Literal["credited", "pending", "skipped", "voided"] = Field(
        description="`skipped`: the referrer was no longer active when the reward came due; `voided`: the "
        "purchase was returned within the programme's return window (the referrer got nothing, the friend's "
        "points were taken back)."
    )
    created_at: datetime
    credited_at: datetime | None


class ExportActivity(BaseModel):
    """An activity the member was rewarded for (a check-in, a review, …), whatever it earned."""

    type: str
    ref: str = Field(description="What the caller named the activity by (a store's check-in, a review's id).")
    day: date = Field(description="The programme's day it fell on.")
    streak: int = Field(description="Consecutive days of this type up to it.")
    points: int
    bonus: int = Field(description="The streak bonus it completed, if any.")
    entry_id: uuid.UUID | None = Field(description="The ledger entry that credited it (null: 0 points).")
    created_at: datetime


class ExportCampaignReach(BaseModel):
    """A campaign that reached the member: what it gave them (a coupon, or points) and when."""

    campaign_id: uuid.UUID
    name: str
    outcome: str = Field(description="`coupon_issued` or `points_granted`.")
    reached_at: datetime


class ExportEngagement(BaseModel):
    lifecycle: ExportLifecycle
    rfm: ExportRfm | None = Field(description="Null: the RFM job has not scored the member.")
    referral_rewards: list[ExportReferralReward]
    activities: list[ExportActivity] = Field(description="Oldest first.")
    campaigns: list[ExportCampaignReach] = Field(description="Oldest first.")


class ExportDelivery(BaseModel):
    """The event sent, or being sent, to one webhook endpoint (kept for the retention period)."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    status: str = Field(description="pending, succeeded or failed.")
    attempts: int
    created_at: datetime
    delivered_at: datetime | None


class ExportEvent(BaseModel):
    """A domain event about the member, named rather than copied: its payload is in the outbox, and went to
    the endpoints its deliveries name."""

    id: uuid.UUID = Field(description="Also the `webhook-id` it was sent under.")
    type: str
    occurred_at: datetime
    deliveries: list[ExportDelivery]


class MemberExport(BaseModel):
    """Everything the service holds about one member, for a data-subject access request.

    Points are whole numbers and money is `{amount, currency}` in minor units. Lists run oldest first.
    Another member's data never appears: a referrer shows as an id, a referred friend not at all."""

    format_version: Literal[1] = Field(
        description="Raised when a field is removed, renamed or changes meaning."
    )
    exported_at: datetime = Field(description="The instant the export reads the data as of.")
    member_id: uuid.UUID
    profile: ExportProfile
    identifiers: ExportIdentifiers
    consents: ExportConsents
    points: ExportPoints
    orders: list[ExportOrder] = Field(
        description="The member's purchases and orders paid with points, oldest first."
    )
    tier: ExportTier
    coupons: list[ExportCoupon] = Field(description="Oldest first.")
    reward_redemptions: list[ExportRewardRedemption] = Field(description="Oldest first.")
    subscriptions: list[ExportSubscription] = Field(description="Oldest first.")
    partners: ExportPartners
    engagement: ExportEngagement
    events: list[ExportEvent] = Field(description="Every event about the member, oldest first.")


class ErasureRead(ReadModel):
    """What an erasure removed. Asked again for an erased member: `newly_erased` false, nothing removed."""

    member_id: uuid.UUID
    erased_at: datetime = Field(description="When the member's personal data was erased.")
    newly_erased: bool = Field(description="False when the member was erased already: this call did nothing.")
    external_ids: int = Field(description="External ids removed (free for another member now).")
    partner_links: list[str] = Field(description="Codes of the partners whose links were removed.")
    events_rewritten: int = Field(description="Stored events whose partner customer ref was removed.")
    webhook_answers_dropped: int = Field(
        description="Webhook receivers' answers to the member's events dropped."
    )
    idempotency_replies_rewritten: int = Field(
        description="Recorded Idempotency-Key replies about the member kept with their values `erased` (a "
        "birthday null): a retry with the key replays the reply and does nothing again."
    )
    idempotency_replies_dropped: int = Field(
        description="Recorded Idempotency-Key replies about the member that could not be rewritten, dropped: "
        "a retry with the key runs again. Each reply the service writes can be: 0."
    )
