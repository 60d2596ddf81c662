"""Experiment results for analysts: the statistics (`stats`), the ClickHouse reads (`query`), the
table and JSON (`report`), the web page (`web`) and a simulated experiment (`demo`)."""
