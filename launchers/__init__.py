"""Sample Factory launcher run descriptions for sf_kickstart (`python -m sample_factory.launcher.run --run=launchers.X`).

Stage 1  launchers.minigrid_teachers   the small agent from scratch; its seed-0 run is the teacher
         launchers.minigrid_experts    one small single-task expert per easy suite task (cfg/teachers/minigrid_experts.yaml)
Stage 2  launchers.minigrid_ablation   the paper's comparison on the embedded MiniGrid suite, kickstarted from stage 1

Budget: SF_KICKSTART_BUDGET=smoke|small|full (see launchers.common).
"""
