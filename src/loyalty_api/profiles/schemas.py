"""REST request and response models for members."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from loyalty_api.http.schemas import CalendarDate, Instant, Points, ReadModel, TierRef, sent_or_left_out
from loyalty_api.members import member_number as card
from loyalty_api.members.contact import SYSTEM_NAME_PATTERN
from loyalty_api.members.lifecycle import Stage
from loyalty_api.members.models import MemberStatus
from loyalty_api.profiles import imports
from loyalty_api.text import FilledText
from loyalty_api.tiers.schemas import TierCode

SystemName = Annotated[str, StringConstraints(pattern=SYSTEM_NAME_PATTERN)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
Phone = Annotated[str, StringConstraints(min_length=3, max_length=32, strip_whitespace=True)]
# An enrolment's or an update's e-mail is text here, its rule checked by the service beside the phone's and
# the birthday's, so one problem names each of them that is wrong: EmailStr's check here refused the e-mail
# alone, and the phone's fault came only once the e-mail was put right. The document still says it is an
# e-mail address.
EmailText = Annotated[
    str,
    StringConstraints(max_length=254),
    WithJsonSchema({"type": "string", "maxLength": 254, "format": "email"}),
]
PersonName = Annotated[FilledText, StringConstraints(max_length=100, strip_whitespace=True)]
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]
IMPORT_BATCH = 200  # members in one import: one transaction, well within a request's time limit


MOST_SYSTEMS = 20


def _few_systems(value: dict[str, object]) -> dict[str, object]:
    if len(value) > MOST_SYSTEMS:
        raise ValueError(f"at most {MOST_SYSTEMS} external systems")
    return value


class SystemsMap:
    """`external_ids`' annotation: its schema names the system pattern as `propertyNames` and says how many
    systems it takes. Pydantic writes the key pattern as `patternProperties` alone, which admits any other key
    (`CRM`, 21 systems), and generated clients read it as a map of anything."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        [(pattern, value)] = json_schema.pop("patternProperties").items()
        json_schema.update(
            propertyNames={"pattern": pattern}, additionalProperties=value, maxProperties=MOST_SYSTEMS
        )
        return json_schema


class MemberFields(BaseModel):
    """What an enrolment and an import both give of a member."""

    model_config = ConfigDict(extra="forbid")

    phone: Phone | None = Field(default=None, description="Any common format; stored as E.164.")
    email: EmailStr | None = Field(default=None, max_length=254)
    name: PersonName | None = None
    birthday: CalendarDate | None = None
    channel: Channel = Field(default="store", description="Where the member joined: store, online, app, …")
    external_ids: Annotated[dict[SystemName, ExternalId], AfterValidator(_few_systems), SystemsMap()] = Field(
        default_factory=dict,
        description='The member\'s id in other systems, by system name: `{"pos": "C-1001"}`.',
    )
    marketing_consent: bool = False


class MemberCreate(MemberFields):
    email: EmailText | None = None
    referral_code: Annotated[str, StringConstraints(min_length=4, max_length=16)] | None = Field(
        default=None, description="The referral code of the member who referred this one."
    )


def _card_number(number: str) -> str:
    if not card.is_valid(number):
        raise ValueError(
            "not a card number of this programme (ten digits, the last a Luhn check digit): keep other cards "
            "in external_ids"
        )
    if not number.strip("0"):  # its Luhn sum is 0: what an export writes for a member without a card
        raise ValueError("a card number of zeros stands for no card: leave member_number out for a new one")
    return number


class OpeningLot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Points
    expires_at: Instant | None = Field(
        default=None,
        description="When these points end, in the future; left out, as points earned at the import (the "
        "programme's `expiry_months` from now, or never).",
    )


class TierPlacement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: TierCode
    until: Instant = Field(
        description="The member keeps the tier until then, as if they had just qualified for it; then the "
        "tier review judges them by what they bought here (a purchase may move them up before)."
    )


class ImportedMember(MemberFields):
    channel: Channel = Field(default="import", description="Where the member joined.")
    member_number: Annotated[str, AfterValidator(_card_number)] | None = Field(
        default=None,
        description="The card the member carries, kept when it is a card number of ours (ten digits, the "
        "last a Luhn check digit, not all zeros); left out, a new one.",
    )
    points: list[OpeningLot] = Field(
        default_factory=list,
        max_length=50,
        description="The member's points in the previous system, by when they end.",
    )
    tier: TierPlacement | None = None

    def member_import(self) -> imports.MemberImport:
        return imports.MemberImport(
            phone=self.phone,
            email=self.email,
            name=self.name,
            birthday=self.birthday,
            channel=self.channel,
            external_ids=self.external_ids,
            marketing_consent=self.marketing_consent,
            member_number=self.member_number,
            points=[imports.OpeningLot(lot.points, lot.expires_at) for lot in self.points],
            tier=None if self.tier is None else imports.TierPlacement(self.tier.code, self.tier.until),
        )


class MemberImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[ImportedMember] = Field(min_length=1, max_length=IMPORT_BATCH)


class ImportedMemberRead(ReadModel):
    id: uuid.UUID
    member_number: str
    tier: TierRef | None
    points: int = Field(description="Points balance.")


class MemberImportRead(ReadModel):
    members: list[ImportedMemberRead] = Field(description="The members made, in the order sent.")


class MemberUpdate(BaseModel):
    """Fields not sent are left alone; a field sent as null is cleared."""

    model_config = ConfigDict(extra="forbid")

    phone: Phone | None = None
    email: EmailText | None = None
    name: PersonName | None = None
    birthday: CalendarDate | None = None
    status: MemberStatus | None = sent_or_left_out()
    marketing_consent: bool | None = sent_or_left_out()
    leaderboard_opt_in: bool | None = sent_or_left_out(
        description="true: the member appears on `GET /v1/leaderboard`, by a masked card number."
    )
    external_ids: (
        Annotated[dict[SystemName, ExternalId | None], AfterValidator(_few_systems), SystemsMap()] | None
    ) = sent_or_left_out(
        description="Systems to link (id) or unlink (null); systems not named are left alone."
    )

    @field_validator("status", "marketing_consent", "leaderboard_opt_in", "external_ids")
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        # Only runs for values sent: null is a way to clear personal data, not these.
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields sent, by name (null included: it clears), as the service's update takes them; a
        subclass's own fields (GraphQL's `memberId`) are not changes."""
        return {
            name: getattr(self, name) for name in self.model_fields_set & MemberUpdate.model_fields.keys()
        }


class LifecycleRead(ReadModel):
    stage: Stage = Field(
        description="new (no purchase yet), active, at_risk, lapsed or churned, from the days since the last "
        "purchase and the programme's thresholds; a purchase makes a member active at once."
    )
    since: datetime | None = Field(description="When the member entered this stage (null: not assessed yet).")


class MemberRead(ReadModel):
    id: uuid.UUID
    member_number: str = Field(description="The card number: ten digits, the last a Luhn check digit.")
    status: MemberStatus
    tier: TierRef | None
    points: int = Field(description="Points balance.")
    phone: str | None
    email: str | None
    name: str | None
    birthday: date | None
    channel: str
    marketing_consent: bool
    leaderboard_opt_in: bool = Field(
        description="The member agreed to appear on the leaderboard (by a masked card number, never by name)."
    )
    referral_code: str
    referred_by: uuid.UUID | None
    external_ids: dict[str, str]
    lifecycle: LifecycleRead
    created_at: datetime
    updated_at: datetime


class ProfileLinkRead(ReadModel):
    """One of the member's links with a partner, as their profile shows it: without the partner's customer
    reference, which the partner may have made of personal data (a phone number); `GET
    /v1/members/{member_id}/partner-links` shows it."""

    partner: str = Field(description="The partner's code.")
    partner_name: str
    grants: list[str] = Field(description="What the member lets the partner see: `basic`, and `points`.")
    linked_at: datetime


class MemberProfileRead(MemberRead):
    """The member's whole profile: what every member answer holds, and their links with partners."""

    partner_links: list[ProfileLinkRead] = Field(description="The partners the member is linked to.")


class MemberPage(ReadModel):
    items: list[MemberRead]
    next_cursor: str | None


class QrCodeRead(ReadModel):
    qr_code: str = Field(
        description="`LQ1` and 48 characters of base32: put it in a QR code as it is (alphanumeric mode)."
    )
    expires_at: datetime = Field(description="When the code stops working, five minutes on.")
