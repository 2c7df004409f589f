# The CPython documentation's log_to_stderr example (Manager replaced by a Process, as in the C++).
import logging
import multiprocessing


def work():
    multiprocessing.get_logger().info('working')


if __name__ == '__main__':
    logger = multiprocessing.log_to_stderr()
    logger.setLevel(logging.INFO)
    logger.warning('doomed')
    p = multiprocessing.Process(target=work)
    p.start()
    p.join()
    logger.debug('not printed: below INFO')
