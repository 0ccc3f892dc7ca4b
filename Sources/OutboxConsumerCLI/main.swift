print("outbox-consumer")
