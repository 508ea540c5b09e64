"""What measures rather than serves: graded compressions, benchmarks, calibration."""
