using System.Text.Json.Nodes;

namespace Dtask.Core.Crd;

/// <summary>
/// One node of an OpenAPI v3 schema as Kubernetes accepts it in a CRD (a structural schema). The same tree writes
/// the CRD and checks manifests field by field, so the two cannot disagree about which fields exist.
/// </summary>
public sealed record SchemaNode
{
    /// <summary><c>object</c>, <c>array</c>, <c>string</c>, <c>integer</c> or <c>boolean</c>.</summary>
    public required string Type { get; init; }

    /// <summary>Shown by <c>kubectl explain</c>.</summary>
    public string? Description { get; init; }

    /// <summary><c>date-time</c>, <c>int32</c>, <c>int64</c>.</summary>
    public string? Format { get; init; }

    /// <summary>The known fields of an object, in the order they are documented.</summary>
    public IReadOnlyList<SchemaProperty>? Properties { get; init; }

    /// <summary>Fields an object must have.</summary>
    public IReadOnlyList<string>? Required { get; init; }

    /// <summary>The schema of every element of an array.</summary>
    public SchemaNode? Items { get; init; }

    /// <summary>The schema of every value of a map (an object whose keys are free).</summary>
    public SchemaNode? AdditionalProperties { get; init; }

    /// <summary>The allowed values of a string.</summary>
    public IReadOnlyList<string>? Enum { get; init; }

    /// <summary>The value the API server fills in when the field is absent.</summary>
    public JsonNode? Default { get; init; }

    /// <summary>A regular expression a string must match.</summary>
    public string? Pattern { get; init; }

    /// <summary>Bounds of an integer.</summary>
    public long? Minimum { get; init; }

    /// <summary>Bounds of an integer.</summary>
    public long? Maximum { get; init; }

    /// <summary>Bounds of a string's length.</summary>
    public int? MinLength { get; init; }

    /// <summary>Bounds of a string's length.</summary>
    public int? MaxLength { get; init; }

    /// <summary>Bounds of an array's or a map's size.</summary>
    public int? MinItems { get; init; }

    /// <summary>Bounds of an array's or a map's size.</summary>
    public int? MaxItems { get; init; }

    /// <summary>Cross-field rules in CEL (<c>x-kubernetes-validations</c>).</summary>
    public IReadOnlyList<CelRule>? Validations { get; init; }

    /// <summary><c>x-kubernetes-list-type</c>: <c>atomic</c>, <c>set</c> or <c>map</c>.</summary>
    public string? ListType { get; init; }

    /// <summary><c>x-kubernetes-list-map-keys</c> of a <c>map</c> list.</summary>
    public IReadOnlyList<string>? ListMapKeys { get; init; }

    /// <summary>The schema of the field <paramref name="name"/>, or null when the object has no such field.</summary>
    public SchemaNode? Property(string name)
    {
        if (Properties is null)
        {
            return null;
        }

        foreach (var property in Properties)
        {
            if (property.Name == name)
            {
                return property.Schema;
            }
        }

        return null;
    }

    /// <summary>The OpenAPI form, keys in the order Kubernetes documents them.</summary>
    public JsonObject ToOpenApi()
    {
        var o = new JsonObject();
        if (Description is not null)
        {
            o["description"] = Description;
        }

        o["type"] = Type;
        if (Format is not null)
        {
            o["format"] = Format;
        }

        if (Enum is not null)
        {
            o["enum"] = new JsonArray([.. Enum.Select(v => (JsonNode)v)]);
        }

        if (Default is not null)
        {
            o["default"] = Default.DeepClone();
        }

        if (Pattern is not null)
        {
            o["pattern"] = Pattern;
        }

        if (Minimum is not null)
        {
            o["minimum"] = Minimum.Value;
        }

        if (Maximum is not null)
        {
            o["maximum"] = Maximum.Value;
        }

        if (MinLength is not null)
        {
            o["minLength"] = MinLength.Value;
        }

        if (MaxLength is not null)
        {
            o["maxLength"] = MaxLength.Value;
        }

        var sizeIsItems = Type == "array";
        if (MinItems is not null)
        {
            o[sizeIsItems ? "minItems" : "minProperties"] = MinItems.Value;
        }

        if (MaxItems is not null)
        {
            o[sizeIsItems ? "maxItems" : "maxProperties"] = MaxItems.Value;
        }

        if (Required is { Count: > 0 })
        {
            o["required"] = new JsonArray([.. Required.Select(v => (JsonNode)v)]);
        }

        if (Properties is not null)
        {
            var properties = new JsonObject();
            foreach (var property in Properties)
            {
                properties[property.Name] = property.Schema.ToOpenApi();
            }

            o["properties"] = properties;
        }

        if (AdditionalProperties is not null)
        {
            o["additionalProperties"] = AdditionalProperties.ToOpenApi();
        }

        if (Items is not null)
        {
            o["items"] = Items.ToOpenApi();
        }

        if (ListType is not null)
        {
            o["x-kubernetes-list-type"] = ListType;
        }

        if (ListMapKeys is not null)
        {
            o["x-kubernetes-list-map-keys"] = new JsonArray([.. ListMapKeys.Select(v => (JsonNode)v)]);
        }

        if (Validations is { Count: > 0 })
        {
            o["x-kubernetes-validations"] = new JsonArray([.. Validations.Select(r => (JsonNode)new JsonObject
            {
                ["rule"] = r.Rule,
                ["message"] = r.Message,
            })]);
        }

        return o;
    }
}

/// <summary>A named field of an object schema.</summary>
public sealed record SchemaProperty(string Name, SchemaNode Schema);

/// <summary>A CEL rule of <c>x-kubernetes-validations</c>, with the message the API server shows when it fails.</summary>
public sealed record CelRule(string Rule, string Message);
