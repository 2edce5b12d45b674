"""The shipped zoo: teachers you can name as `--teacher=zoo:NAME`, each a Sample Factory experiment dir in this
directory (config.json, checkpoint_p0/, evaluation/, README.md card). Data only: names resolve in
`sf_kickstart.sources`, the listing is `python -m sf_kickstart.zoo` (`sf_kickstart.agents.zoo`), and
`python -m sf_kickstart.zoo.ship` makes a teacher of an experiment (`sf_kickstart.agents.zoo.ship`)."""
