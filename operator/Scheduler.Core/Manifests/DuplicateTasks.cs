using Dtask.Core.Validation;

namespace Dtask.Core.Manifests;

/// <summary>Finds tasks defined twice (the same namespace and name) in one set of manifests.</summary>
public static class DuplicateTasks
{
    /// <summary>The documents, where each valid task defined before in the list gets an error naming the first definition.</summary>
    public static IReadOnlyList<ManifestDocument> Mark(IReadOnlyList<ManifestDocument> documents)
    {
        ArgumentNullException.ThrowIfNull(documents);
        var first = new Dictionary<string, ManifestSource>(StringComparer.Ordinal);
        var result = new List<ManifestDocument>(documents.Count);
        foreach (var document in documents)
        {
            if (document.Task is not { } task)
            {
                result.Add(document);
                continue;
            }

            if (first.TryGetValue(task.Key, out var earlier))
            {
                var error = new FieldError("metadata.name", $"{task.Key} is already defined in {earlier}");
                result.Add(document with { Check = document.Check with { Errors = [.. document.Errors, error] } });
                continue;
            }

            first[task.Key] = document.Source;
            result.Add(document);
        }

        return result;
    }
}
