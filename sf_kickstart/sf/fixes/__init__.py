"""sf/fixes"""
