"""Parity with real BuildKit: expectations recorded from Docker's BuildKit, replayed on bkpy."""
