import random as random
