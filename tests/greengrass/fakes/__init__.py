"""Stand-ins for AWS services moto does not cover."""
