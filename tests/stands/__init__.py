"""Stand-ins the tests and benches run burst against: moto's EC2 server behind a front
with EC2's rules, an ECS emulator for the real Aliyun SDK, and lab helpers. Test
machinery only: nothing in burst/ or providers/ imports it."""
