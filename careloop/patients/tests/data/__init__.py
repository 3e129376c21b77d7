"""Test data for the patient import: builders of messy spreadsheets."""
