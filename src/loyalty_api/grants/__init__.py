"""The benefits on record and who is granted them: the part of benefits that tiers, plans and partners'
joint offers are built on. What a member holds, and the operators' catalogue, are in `benefits`."""
