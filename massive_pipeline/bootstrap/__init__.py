"""Bootstrapping the catalog: the history every series needs, planned at the API's real cost.

`requirements` says how far back each series must reach, `accounting` what a ranged request
costs under the API's rules, `cuts` whether the provider's day and week bars are the store's,
`coverage` what the store already holds, `plan` the cheapest way the code location can fill
the rest, `execute` runs or submits it and `progress` shows it running.
"""
