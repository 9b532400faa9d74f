"""The daily report (seed 002): what each commune planned and aired, stations away, SMS."""
