"""Sections VII-G and VII-I: choosing one member from Table IX/X-shaped results, and how stable that choice is."""
