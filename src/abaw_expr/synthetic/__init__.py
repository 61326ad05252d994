"""Made-up data for tests, the demo and probes: the embedded sample data set in Aff-Wild2's
layout (``sample``, ``sample_face``, ``sample_plan``, ``sample_tasks``), synthetic videos
(``video``), the probes of what a head can learn (``probe``, ``context_probe``) and the demo
(``demo``). Nothing below this package imports it: the code that reads real data never
depends on the synthetic."""
