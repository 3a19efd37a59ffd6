"""Administrative hierarchy: district → new city → street → community → grid."""
