from __future__ import annotations

from loyalty_api.outbox.events import Event


class ProgramUpdated(Event):
    event_type = "program.updated"
    description = "An operator changed the programme's settings; `settings` holds them all, as now in force."

    settings: dict[str, object]
