"""The coalition: what partner brands do with the members linked to them (see them, record joint benefits
used, earn and refund at the partner, exchange points, settle) and the routes for all of partners. The
partners themselves, members' links to them, joint offers and perks are in `partners`."""
