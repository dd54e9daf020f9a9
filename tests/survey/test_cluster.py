"""Clustering detections into unique sources on the sphere: RA = 0/360, poles,
friends-of-friends linking, spherical means, IAU names, order independence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from xcube.survey import angular_separation, cluster_detections, cluster_positions, iau_name, spherical_mean

ARCSEC = 1 / 3600


def _scatter(ra0, dec0, n, radius_arcsec, rng):
    """n points within radius_arcsec of (ra0, dec0), placed with astropy offsets."""
    c = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    pa = rng.uniform(0, 360, n) * u.deg
    sep = rng.uniform(0, radius_arcsec, n) * u.arcsec
    p = c.directional_offset_by(pa, sep)
    return p.ra.deg, p.dec.deg


def test_cluster_across_ra_zero():
    rng = np.random.default_rng(1)
    ra, dec = _scatter(0.0, 10.0, 20, 6.0, rng)
    assert (ra > 359).any() and (ra < 1).any()  # the group straddles RA = 0/360
    ra2, dec2 = _scatter(0.5, 10.0, 10, 6.0, rng)  # another source 0.5 deg away
    labels = cluster_positions(np.r_[ra, ra2], np.r_[dec, dec2], radius_arcsec=20.0)
    assert len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1 and labels[0] != labels[20]
    det = pd.DataFrame({"ra": ra, "dec": dec, "obsid": "1", "run_id": [f"r{i % 3}" for i in range(20)],
                        "log10_bayes": np.arange(20.0), "kind": "peak"})
    _, src = cluster_detections(det)
    assert len(src) == 1
    mean = SkyCoord(ra * u.deg, dec * u.deg).cartesian.mean()
    ref = SkyCoord(mean)
    s = SkyCoord(src.ra[0] * u.deg, src.dec[0] * u.deg)
    assert s.separation(ref).arcsec < 1e-6
    assert src.ra[0] < 0.01 or src.ra[0] > 359.99  # a plain mean of RA would give ~180
    assert 0 <= src.ra[0] < 360
    assert src.n_detections[0] == 20 and src.n_runs[0] == 3 and src.n_observations[0] == 1
    assert src.best_log10_bayes[0] == 19.0 and src.kinds[0] == "peak"
    assert 0 < src.radius_arcsec[0] <= 12.0  # members lie within 6" of the centre, so within 12" of the mean


@pytest.mark.parametrize("pole", [90.0, -90.0])
def test_cluster_at_the_poles(pole):
    rng = np.random.default_rng(2)
    # points all around the pole: RAs cover 0..360 yet they are within a few arcsec
    ra = rng.uniform(0, 360, 30)
    dec = np.sign(pole) * (90 - rng.uniform(0, 5, 30) * ARCSEC)
    labels = cluster_positions(ra, dec, 20.0)
    assert len(set(labels)) == 1
    ra_m, dec_m = spherical_mean(ra, dec)
    mean = SkyCoord(SkyCoord(ra * u.deg, dec * u.deg).cartesian.mean())
    assert SkyCoord(ra_m * u.deg, dec_m * u.deg).separation(mean).arcsec < 1e-6
    assert abs(dec_m - pole) < 5 * ARCSEC
    # a point 30" from the pole, on the far side, is a different source
    far = cluster_positions(np.r_[ra, 123.0], np.r_[dec, np.sign(pole) * (90 - 30 * ARCSEC)], 20.0)
    assert far[-1] != far[0]


def test_friends_of_friends_and_radius_edges():
    # a chain with 15" steps is one source; a 25" gap splits it
    dec = np.array([0, 15, 30, 55, 70]) * ARCSEC
    labels = cluster_positions(np.full(5, 200.0), dec, 20.0)
    assert labels.tolist() == [0, 0, 0, 1, 1]
    # just inside / just outside the radius
    assert cluster_positions([10.0, 10.0], [0.0, 19.999 * ARCSEC], 20.0).tolist() == [0, 0]
    assert cluster_positions([10.0, 10.0], [0.0, 20.001 * ARCSEC], 20.0).tolist() == [0, 1]
    assert cluster_positions([], [], 20.0).shape == (0,)
    with pytest.raises(ValueError, match="NaN"):
        cluster_positions([1.0, np.nan], [0.0, 0.0])


def test_source_ids_do_not_depend_on_order():
    rng = np.random.default_rng(3)
    centres = [(0.001, -20.0), (359.999, -20.01), (120.0, 89.9999), (45.0, 0.0), (300.0, -89.9995)]
    rows = []
    for k, (r, d) in enumerate(centres):
        ra, dec = _scatter(r, d, 5, 5.0, rng)
        for i in range(5):
            rows.append({"ra": ra[i], "dec": dec[i], "obsid": f"o{i % 2}", "run_id": f"r{i}",
                         "log10_bayes": rng.uniform(6, 20), "sigma_equivalent": rng.uniform(3, 9),
                         "kind": "peak" if i else "eclipse", "t_start": float(i), "t_stop": i + 1.0})
    det = pd.DataFrame(rows)
    d1, s1 = cluster_detections(det)
    d2, s2 = cluster_detections(det.sample(frac=1, random_state=5).reset_index(drop=True))
    assert len(s1) == 5
    pd.testing.assert_frame_equal(s1, s2)
    key = ["obsid", "run_id", "ra"]
    m = d1.sort_values(key)[["source_id", "source_name"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(m, d2.sort_values(key)[["source_id", "source_name"]].reset_index(drop=True))
    assert (s1.n_observations == 2).all() and (s1.kinds == "eclipse+peak").all()
    assert (s1.t_first == 0).all() and (s1.t_last == 5).all()
    assert list(s1.ra) == sorted(s1.ra)
    # every member lies within the clustering radius of its source's mean position here
    sep = angular_separation(d1.ra, d1.dec, s1.ra.to_numpy()[d1.source_id], s1.dec.to_numpy()[d1.source_id])
    assert (sep * 3600 < 20).all()
    empty, src = cluster_detections(det.iloc[0:0])
    assert len(src) == 0 and "source_id" in empty.columns


def test_iau_names_truncate():
    names = iau_name([0.0, 83.63308, 359.999999, 201.365063], [0.0, 22.0145, -0.0001, -43.019113])
    assert names.tolist() == ["XCUBE J000000.0+000000", "XCUBE J053431.9+220052", "XCUBE J235959.9-000000",
                              "XCUBE J132527.6-430108"]
    # truncation, checked against astropy's sexagesimal components
    rng = np.random.default_rng(4)
    ra, dec = rng.uniform(0, 360, 200), rng.uniform(-90, 90, 200)
    for name, r, d in zip(iau_name(ra, dec, prefix="X"), ra, dec):
        h, m, s = SkyCoord(r * u.deg, d * u.deg).ra.hms
        assert name[3:7] == f"{int(h):02d}{int(m):02d}"
        assert abs(float(name[7:11]) - np.floor(s * 10) / 10) < 0.11
        assert name[11] == ("-" if d < 0 else "+")
        assert int(name[12:14]) == int(abs(d))


def test_angular_separation_matches_astropy():
    rng = np.random.default_rng(5)
    ra1, ra2 = rng.uniform(0, 360, (2, 500))
    dec1, dec2 = rng.uniform(-90, 90, (2, 500))
    ref = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg
    np.testing.assert_allclose(angular_separation(ra1, dec1, ra2, dec2), ref, rtol=0, atol=1e-10)
