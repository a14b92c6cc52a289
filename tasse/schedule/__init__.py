"""Schedules: crontab lines and the wall-clock times they fire at."""
