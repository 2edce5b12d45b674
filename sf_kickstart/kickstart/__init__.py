"""kickstart"""
