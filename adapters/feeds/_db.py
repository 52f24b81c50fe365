"""Intermediate-database sources (中间库): PostgreSQL and MySQL/MariaDB."""
