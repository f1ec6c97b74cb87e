"""Packaging for sparse_ae_tf: every setting is read from `settings.ini`, as in nbdev 2 projects."""
import shlex
from configparser import ConfigParser

import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'],
    author=cfg['author'],
    license='Apache-2.0',
    classifiers=[
        'Development Status :: 3 - Alpha',
        'Intended Audience :: Developers',
        'Intended Audience :: Science/Research',
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    # no url, no author_email: the project has no public home page or address yet (a placeholder would mislead)
    # find_namespace_packages: the bundled data folder (sparse_ae_tf/assets) is a namespace package with data files
    packages=setuptools.find_namespace_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    package_data={cfg['lib_path'] + '.assets': ['*.npz', '*.md', '*.hdf5', '*.json']},
    include_package_data=True,
    install_requires=shlex.split(cfg.get('requirements', '')),
    # install_requires carries environment markers (tensorflow-cpu or tensorflow by platform): see settings.ini
    extras_require={'dev': shlex.split(cfg.get('dev_requirements', '')), 'jax': shlex.split(cfg.get('jax_requirements', ''))},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
)
