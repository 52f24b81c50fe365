"""The benchmarks behind `dipgw bench <verb>` (gateway.commands.bench*: arguments, printing,
exit codes): `common` what every bench counts and times with, `validate` decode + validate
against the decode ceiling, `ingest` HTTP push → acknowledged Kafka write, `pipeline` push →
scored row. Part of the composition root: the pipeline bench wires the workers in."""
