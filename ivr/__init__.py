"""Call applications: the contract (`ivr.application`, described in `ivr/README.md`), the
session that drives one (`ivr.session`) and the test services (`ivr.diagnostics`)."""
