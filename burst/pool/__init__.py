"""The shared on-prem pool: business units lend a share of their servers, bursts
lease them first, owners recall them, and every host-hour is accounted for.

Modules, one job each:
  inventory  Ansible inventories (INI or YAML) -> hosts with cpu and memory
  ledger     units, hosts, lending and recall (the owner's side)
  leases     claiming and releasing leases atomically (the burst's side)
  report     host-hours lent and borrowed per business unit
  tables     the SQLModel tables
"""
