# Stubs for the part of aiokafka Inlet uses (aiokafka ships no types). Add to them when using more.
from aiokafka.consumer import AIOKafkaConsumer as AIOKafkaConsumer
from aiokafka.producer import AIOKafkaProducer as AIOKafkaProducer
from aiokafka.structs import ConsumerRecord as ConsumerRecord
from aiokafka.structs import TopicPartition as TopicPartition
