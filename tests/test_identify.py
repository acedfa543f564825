"""barcodemae.identify and barcodemae.clustering on synthetic vectors and the fixture's k-mer vectors."""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from barcodemae.clustering import (
    bootstrap_ami_differences, centroid_clusters, identity_clusters, threshold_clusters,
)
from barcodemae.data import load_splits
from barcodemae.encoders import kmer_embeddings
from barcodemae.errors import UserError
from barcodemae.identify import (
    Relatives, assign, calibrate_thresholds, identify, prefer_species_matches, ranked_neighbours,
)
from barcodemae.search.references import Reference


def taxonomy_vectors(rng, noise: float):
    """2 genera x 2 species x 6 barcodes: species centres close within a genus, genera far apart."""
    genera = rng.normal(size=(2, 32)) * 10
    vectors, species, genus = [], [], []
    for g in range(2):
        for s in range(2):
            centre = genera[g] + rng.normal(size=32) * 3
            vectors += list(centre + rng.normal(size=(6, 32)) * noise)
            species += [f"G{g} s{s}"] * 6
            genus += [f"G{g}"] * 6
    labels = {"species": np.array(species), "genus": np.array(genus), "family": np.array(["F"] * 24)}
    return np.array(vectors, dtype=np.float32), labels, genera


def test_unseen_species_gets_genus_and_no_species():
    rng = np.random.default_rng(0)
    vectors, labels, genera = taxonomy_vectors(rng, noise=0.3)
    thresholds = calibrate_thresholds(vectors, labels, quantile=0.05)
    assert thresholds["species"] > thresholds["genus"]  # relatives within a species are closer than within a genus
    seen = vectors[[0, 13]] + rng.normal(size=(2, 32)).astype(np.float32) * 0.3  # new barcodes of known species
    unseen = (genera[[0, 1]] + rng.normal(size=(2, 32)) * 3).astype(np.float32)  # new species of known genera
    calls = identify(Reference(vectors, labels, thresholds), np.concatenate([seen, unseen]), k=3)
    assert list(calls.species) == ["G0 s0", "G1 s0", "", ""]
    assert list(calls.genus) == ["G0", "G1", "G0", "G1"]
    # Before abstention the unseen ones still have a best hit: a species of their genus.
    assert [hit.split()[0] for hit in calls.species_best_hit[2:]] == ["G0", "G1"]
    assert (calls.genus_agreement[:2] == 1.0).all()


def test_labels_unknown_at_a_rank_are_not_called():
    vectors = np.eye(4, dtype=np.float32)
    labels = {"species": np.array(["", "", "a", "a"]), "genus": np.array(["A", "A", "A", "A"])}
    calls = identify(Reference(vectors, labels, {"species": -1.0, "genus": -1.0}), vectors[:1], k=4)
    assert calls.species[0] == "a" and calls.species_similarity[0] == pytest.approx(0.0)
    assert calls.genus[0] == "A" and calls.genus_similarity[0] == pytest.approx(1.0)


def test_alignment_identity_ranks_the_embedding_candidates():
    """The embedding proposes, identity decides: the query's vector is nearest reference 0, its barcode equals
    reference 2's; a reference without sequences ranks by cosine. A reference with them needs the query sequences
    and at least one candidate (its thresholds are identities)."""
    barcode = "AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATT"
    sequences = [barcode[:30] + "GGGGG" + barcode[35:], barcode[::-1], barcode]
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    labels = {"species": np.array(["a", "b", "c"])}
    reference = Reference(vectors, labels, {"species": 0.99}, sequences)
    aligned = identify(reference, vectors[:1], k=2, query_sequences=[barcode], candidates=3)
    assert aligned.nearest_reference[0] == 2 and aligned.species[0] == "c" and aligned.species_similarity[0] == 1.0
    cosine = identify(Reference(vectors, labels, {"species": 0.99}), vectors[:1], k=2, query_sequences=[barcode])
    assert cosine.nearest_reference[0] == 0 and cosine.species_best_hit[0] == "a"
    with pytest.raises(UserError, match="candidates must be at least 1, got 0"):
        identify(reference, vectors[:1], k=2, query_sequences=[barcode], candidates=0)
    with pytest.raises(UserError, match="give the query sequences"):
        identify(reference, vectors[:1], k=2)


def test_identity_thresholds_order_the_ranks(fixture_path):
    """Calibrated on alignment identity, relatives within a species are more alike than within a genus or family."""
    train = load_splits(fixture_path, ["train"])["train"]
    vectors = kmer_embeddings(train.sequences, 6)
    thresholds = calibrate_thresholds(vectors, train.labels, quantile=0.5, sequences=train.sequences)
    assert 1.0 >= thresholds["species"] > thresholds["genus"] > thresholds["family"] > 0.5


@pytest.fixture(scope="module")
def fixture_vectors(fixture_path):
    splits = load_splits(fixture_path, ["test", "test_unseen"])
    return kmer_embeddings(splits["test"].sequences + splits["test_unseen"].sequences, 6)


@pytest.mark.parametrize(("method", "threshold"), [("single", 0.1), ("average", 0.15)])
def test_clusters_equal_scipy_on_all_pairs(fixture_vectors, method, threshold):
    """Component-wise clustering gives exactly scipy's linkage over the whole distance matrix."""
    expected = fcluster(linkage(pdist(fixture_vectors, "cosine"), method=method), t=threshold, criterion="distance")
    found = threshold_clusters(fixture_vectors, threshold, method, chunk_size=100)
    assert adjusted_rand_score(expected, found) == 1.0
    assert found[0] == 0 and set(found) == set(range(found.max() + 1))  # numbered by first appearance


def test_identity_clusters_join_barcodes_at_least_as_alike_as_asked():
    barcode = "AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATTAGGAAATCCTGGATCTTTAATTGGAGATGATCAA"
    variant = barcode[:50] + "C" + barcode[51:]  # one substitution in 110 nt: 99.1% identical
    other = barcode[::-1]
    sequences = [barcode, other, variant, barcode[10:90]]  # the last: a partial copy, 100% identical where it aligns
    vectors = kmer_embeddings(sequences, 4)
    assert list(identity_clusters(vectors, sequences, identity=0.99, candidates=3, average_up_to=0)) == [0, 1, 0, 0]
    assert list(identity_clusters(vectors, sequences, identity=1.0, candidates=3, average_up_to=0)) == [0, 1, 2, 0]
    # the variant is 99.1% alike the barcode but 98.75% alike its copy (79 of 80 nt): 98.9% on average, below 99%
    assert list(identity_clusters(vectors, sequences, identity=0.99, candidates=3)) == [0, 1, 2, 0]
    with pytest.raises(UserError, match="candidates must be at least 1, got 0"):
        identity_clusters(vectors, sequences, candidates=0)  # not every barcode a cluster of its own, silently


def test_identity_clusters_recover_bins_better_than_cosine(fixture_path):
    splits = load_splits(fixture_path, ["test", "test_unseen"])
    sequences = splits["test"].sequences + splits["test_unseen"].sequences
    bins = np.concatenate([splits["test"].labels["dna_bin"], splits["test_unseen"].labels["dna_bin"]])
    known = bins != ""
    vectors = kmer_embeddings(sequences, 6)
    by_identity = adjusted_mutual_info_score(bins[known], identity_clusters(vectors, sequences)[known])
    by_cosine = adjusted_mutual_info_score(bins[known], threshold_clusters(vectors)[known])
    assert by_identity > by_cosine and by_identity > 0.95


def test_bootstrap_ami_differences_count_a_merge_only_where_both_groups_are_drawn():
    truth = np.array(["BIN A", "BIN A", "BIN B", "BIN B"])
    perfect, merged = np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0])
    differences = bootstrap_ami_differences(truth, perfect, [merged, perfect], draws=200, seed=3)
    assert differences.shape == (200, 2) and not differences[:, 1].any()  # a clustering against itself: 0
    # both BINs drawn (half the draws): 1 - 0; one drawn twice: two copies, each its own BIN and cluster: 1 - 1
    assert set(np.round(differences[:, 0], 9)) == {0.0, 1.0} and 0.35 < differences[:, 0].mean() < 0.65
    assert np.array_equal(differences, bootstrap_ami_differences(truth, perfect, [merged, perfect], 200, seed=3))


def test_rules_best_hit_lca_and_vote():
    """One reference of genus A nearest the query, four of genus B a little farther: the best hit says A at every
    rank (the default), the vote of the 5 nearest says B, lca abstains where hits within its margin disagree."""
    angles = np.array([0.0, 0.10, 0.11, 0.12, 0.13, 1.5])
    vectors = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    labels = {"species": np.array(["A a", "B b", "B b", "B c", "B c", "C d"]),
              "genus": np.array(["A", "B", "B", "B", "B", "C"]), "family": np.array(["F"] * 5 + ["G"])}  # fmt: skip
    reference = Reference(vectors, labels, {"species": -1.0, "genus": -1.0, "family": -1.0})
    query = vectors[:1]
    best = identify(reference, query, k=5)
    assert (best.species[0], best.genus[0], best.family[0]) == ("A a", "A", "F")
    assert best.genus_agreement[0] == pytest.approx(0.2) and best.family_agreement[0] == pytest.approx(1.0)
    vote = identify(reference, query, k=5, rule="vote")
    assert (vote.species[0], vote.genus[0]) == ("A a", "B")  # species stays the best hit
    lca = identify(reference, query, k=5, rule="lca", margin=0.05)  # cos(0.13) = 0.9916: all five within the margin
    assert (lca.species[0], lca.genus[0], lca.family[0]) == ("", "", "F") and lca.genus_best_hit[0] == "A"
    assert identify(reference, query, k=5, rule="lca", margin=0.0).genus[0] == "A"  # no other hit that close
    with pytest.raises(UserError, match="rule must be one of best, lca, vote"):
        identify(reference, query, rule="majority")


def random_barcode(rng, length: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


def substituted(barcode: str, rng, count: int) -> str:
    """`barcode` with `count` substitutions at distinct random positions."""
    bases = list(barcode)
    for position in rng.choice(len(bases), size=count, replace=False):
        bases[position] = {"A": "C", "C": "G", "G": "T", "T": "A"}[bases[position]]
    return "".join(bases)


def test_overlap_identity_does_not_charge_an_overhang():
    from barcodemae.alignment import alignment_identity, overlap_alignment, overlap_identity

    gene = random_barcode(np.random.default_rng(1), 700)
    left, right = gene[:500], gene[100:650]  # 400 nt in common, each hangs over an end of the other
    assert alignment_identity(left, right) < 0.85 and overlap_alignment(left, right) == (1.0, 400)
    assert overlap_alignment(gene[200:], gene[:550]) == (1.0, 350)  # the shorter hangs over the longer's end
    mismatch = right[:200] + {"A": "C", "C": "G", "G": "T", "T": "A"}[right[200]] + right[201:]
    assert overlap_identity(left, mismatch) == pytest.approx(1 - 1 / 400)
    assert overlap_identity(left, right, min_overlap=450) == alignment_identity(left, right)  # too little overlap
    ambiguous = left[:300] + "N" + left[301:]
    assert overlap_identity(ambiguous, right) == 1.0  # N matches any base, in the overlap as everywhere
    inside = gene[150:450]
    assert overlap_alignment(inside, gene) == (1.0, 300)  # inside the other: the infix alignment itself
    assert overlap_identity(substituted(inside, np.random.default_rng(2), 3), gene) == pytest.approx(0.99)
    assert overlap_identity("", gene) == 0.0


def test_average_linkage_and_centroids_break_the_chain_single_linkage_makes():
    """b0 ~ b1 97.3%, b1 ~ b2 98.3%, b0 ~ b2 95.7%: single linkage at 97% chains all three; average linkage within the
    component leaves b0 out (96.1% alike the others on average) unless the component is larger than it splits or the
    split's silhouette (0.598, b1 sits between) is not above the least asked (0.6 by default); greedy centroids keep
    every member at least 97% alike its centroid, and which centroids are founded depends on the order."""
    rng = np.random.default_rng(0)
    b0 = random_barcode(rng, 300)
    b1 = substituted(b0, rng, 8)
    b2 = substituted(b1, rng, 5)
    sequences = [b0, b1, b2, b2, b2]  # b2 three times: the most abundant
    vectors = kmer_embeddings(sequences, 4)
    assert list(identity_clusters(vectors, sequences, 0.97, candidates=4, average_up_to=0)) == [0, 0, 0, 0, 0]
    assert list(identity_clusters(vectors, sequences, 0.97, candidates=4, least_silhouette=0.59)) == [0, 1, 1, 1, 1]
    assert list(identity_clusters(vectors, sequences, 0.97, candidates=4)) == [0, 0, 0, 0, 0]
    assert list(identity_clusters(vectors, sequences, 0.97, candidates=4, average_up_to=4, least_silhouette=-1)) == [
        0, 0, 0, 0, 0]
    assert list(centroid_clusters(vectors, sequences, 0.97, candidates=4, order="length")) == [0, 0, 1, 1, 1]
    assert list(centroid_clusters(vectors, sequences, 0.97, candidates=4)) == [0, 1, 1, 1, 1]  # b2 founds first
    weights = np.array([1, 10, 1, 1, 1])  # given abundances: b1 founds first, and both others are 97% alike it
    assert list(centroid_clusters(vectors, sequences, 0.97, candidates=4, abundances=weights)) == [0, 0, 0, 0, 0]
    assert list(centroid_clusters(vectors, sequences, 0.97, candidates=4, block_size=2)) == [0, 1, 1, 1, 1]
    with pytest.raises(UserError, match="order must be one of abundance, length"):
        centroid_clusters(vectors, sequences, order="random")


def test_average_linkage_split_of_two_groups_apart_is_kept():
    """Two groups of three (each within 98.7% alike), joined at 97% by one pair 97.3% alike and otherwise 96-96.7%
    alike: single linkage joins them, average linkage splits them, and the split's silhouette (0.75) keeps it at the
    default least silhouette, not at 0.8."""
    rng = np.random.default_rng(1)
    first = random_barcode(rng, 300)
    second = substituted(first, rng, 8)
    sequences = [first, substituted(first, rng, 2), substituted(first, rng, 2)]
    sequences += [second, substituted(second, rng, 2), substituted(second, rng, 2)]
    vectors = kmer_embeddings(sequences, 4)
    assert list(identity_clusters(vectors, sequences, 0.97, candidates=5, average_up_to=0)) == [0] * 6
    assert list(identity_clusters(vectors, sequences, 0.97, candidates=5)) == [0, 0, 0, 1, 1, 1]
    assert list(identity_clusters(vectors, sequences, 0.97, candidates=5, least_silhouette=0.8)) == [0] * 6


def test_centroid_clusters_recover_the_fixture_bins(fixture_path):
    splits = load_splits(fixture_path, ["test", "test_unseen"])
    sequences = splits["test"].sequences + splits["test_unseen"].sequences
    bins = np.concatenate([splits["test"].labels["dna_bin"], splits["test_unseen"].labels["dna_bin"]])
    known = bins != ""
    clusters = centroid_clusters(kmer_embeddings(sequences, 6), sequences)
    assert adjusted_mutual_info_score(bins[known], clusters[known]) > 0.95  # 0.960 at the default 98%


def test_relatives_embedding_proposes_only_where_no_species_level_match():
    """Query 0 has a species-level match (99% alike) among the first embedding's candidates and keeps it, though the
    relatives embedding would propose reference 2; query 1's first candidate is only 80% alike, so the relatives
    embedding's candidate (90% alike) replaces it; with `species_match` above 99%, query 0 takes the relatives'
    candidate too."""
    rng = np.random.default_rng(0)
    first, second = random_barcode(rng, 300), random_barcode(rng, 300)
    references = [substituted(first, rng, 3), substituted(second, rng, 30), substituted(second, rng, 60)]
    labels = {"species": np.array(["a", "b", "c"])}
    reference = Reference(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32), labels,
                          {"species": 0.0}, references)  # fmt: skip
    queries, query_vectors = [first, second], np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    relative_vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    query_relatives = np.array([[0.7, 0.7], [0.0, 1.0]], dtype=np.float32)
    ranked = ranked_neighbours(reference, query_vectors, queries, n=1)
    assert ranked[0][:, 0].tolist() == [0, 2] and ranked[1][1, 0] == pytest.approx(0.8, abs=0.01)
    relatives = Relatives(reference.with_vectors(relative_vectors), query_relatives, candidates=1)
    indices, similarities = prefer_species_matches(reference, ranked, relatives, queries)
    assert indices[:, 0].tolist() == [0, 1] and similarities[1, 0] == pytest.approx(0.9, abs=0.01)
    table = identify(reference, query_vectors, k=1, query_sequences=queries, candidates=1, relatives=relatives)
    assert table.species.tolist() == ["a", "b"]
    strict = Relatives(reference.with_vectors(relative_vectors), query_relatives, candidates=1, species_match=0.999)
    assert prefer_species_matches(reference, ranked, strict, queries)[0][:, 0].tolist() == [2, 1]
    wide = ranked_neighbours(reference, query_vectors, queries, n=2)  # one relative candidate: the row ends in -1
    indices, similarities = prefer_species_matches(reference, wide, relatives, queries)
    assert indices[1].tolist() == [1, -1] and similarities[1, 1] == -np.inf and indices[0].tolist() == wide[0][0].tolist()
    assert assign(reference, indices, similarities, k=2).species.tolist() == ["a", "b"]
