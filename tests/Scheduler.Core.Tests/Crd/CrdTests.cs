using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dtask.Core.Crd;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.Tests.Support;

namespace Dtask.Core.Tests.Crd;

public sealed class CrdTests
{
    [Fact]
    public void The_committed_crd_is_the_generated_one()
    {
        var committed = File.ReadAllText(RepoFiles.Path(CrdGenerator.CommittedPath));

        Assert.True(
            committed == CrdGenerator.Generate(),
            $"{CrdGenerator.CommittedPath} is not what `dtask crd` prints; regenerate it from the repository root with:\n"
            + $"  dotnet run --project operator/Scheduler.Cli -- crd > {CrdGenerator.CommittedPath}");
    }

    [Fact]
    public void The_crd_names_the_resource_as_kubectl_expects()
    {
        var crd = CrdGenerator.Build();
        var names = crd["spec"]!["names"]!;
        var version = crd["spec"]!["versions"]![0]!;

        Assert.Equal("scheduledtasks.dtask.dev", crd["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal("Namespaced", crd["spec"]!["scope"]!.GetValue<string>());
        Assert.Equal("ScheduledTask", names["kind"]!.GetValue<string>());
        Assert.Equal("scheduledtask", names["singular"]!.GetValue<string>());
        Assert.Equal("stask", names["shortNames"]![0]!.GetValue<string>());
        Assert.Equal("v1alpha1", version["name"]!.GetValue<string>());
        Assert.True(version["served"]!.GetValue<bool>() && version["storage"]!.GetValue<bool>());
        Assert.NotNull(version["subresources"]!["status"]);
        Assert.Equal(
            ["Schedule", "Every", "Suspend", "Last Run", "Node", "Result", "Next", "Age"],
            version["additionalPrinterColumns"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
    }

    [Fact]
    public void Every_printer_column_points_at_a_field_of_the_schema()
    {
        foreach (var column in CrdGenerator.PrinterColumns)
        {
            var node = ScheduledTaskSchema.Document;
            foreach (var part in column.JsonPath.TrimStart('.').Split('.'))
            {
                node = node.Property(part) ?? (part == "creationTimestamp" ? node.Property(part) : null);
                Assert.True(node is not null, $"{column.Name}: {column.JsonPath} is not in the schema");
            }
        }
    }

    [Fact]
    public void The_schema_has_exactly_the_fields_of_the_model()
    {
        AssertSameShape(typeof(ScheduledTask), ScheduledTaskSchema.Document, "");
    }

    private static void AssertSameShape(Type type, SchemaNode schema, string path)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<JsonIgnoreAttribute>() is null)
            .ToList();
        Assert.True(schema.Properties is not null, $"{path}: the schema has no properties for {type.Name}");
        Assert.Equal(
            properties.Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)),
            schema.Properties!.Select(p => p.Name));

        foreach (var property in properties)
        {
            var name = JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            AssertSameType(property.PropertyType, schema.Property(name)!, path.Length == 0 ? name : $"{path}.{name}");
        }
    }

    private static void AssertSameType(Type type, SchemaNode schema, string path)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string))
        {
            Assert.True(schema.Type == "string", $"{path}: expected a string in the schema, found {schema.Type}");
        }
        else if (type == typeof(int) || type == typeof(long))
        {
            Assert.True(schema.Type == "integer" && schema.Format == (type == typeof(int) ? "int32" : "int64"), $"{path}: expected an {type.Name} in the schema");
        }
        else if (type == typeof(bool))
        {
            Assert.Equal("boolean", schema.Type);
        }
        else if (type == typeof(DateTimeOffset))
        {
            Assert.True(schema is { Type: "string", Format: "date-time" }, $"{path}: expected a date-time in the schema");
        }
        else if (type.IsEnum)
        {
            var words = typeof(EnumWords).GetMethod(nameof(EnumWords.Of))!.MakeGenericMethod(type).Invoke(null, null);
            Assert.Equal((IEnumerable<string>)words!, schema.Enum!);
        }
        else if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>))
        {
            Assert.True(schema is { Type: "object", AdditionalProperties.Type: "string" }, $"{path}: expected a map of strings in the schema");
        }
        else if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>))
        {
            Assert.True(schema.Type == "array", $"{path}: expected a list in the schema");
            AssertSameType(type.GetGenericArguments()[0], schema.Items!, path + "[]");
        }
        else if (type.Namespace == typeof(ScheduledTask).Namespace)
        {
            if (path == "metadata" && schema == ScheduledTaskSchema.Root.Property("metadata"))
            {
                return;
            }

            AssertSameShape(type, schema, path);
        }
        else
        {
            Assert.Fail($"{path}: {type.Name} has no schema mapping in this test");
        }
    }
}
