using System.CommandLine;
using Dtask.Core.Crd;

namespace Dtask.Cli.Commands;

/// <summary><c>dtask crd</c>: prints the ScheduledTask CustomResourceDefinition (the committed file is this output).</summary>
internal static class CrdCommand
{
    public static Command Create()
    {
        var command = new Command("crd", $"Print the ScheduledTask CustomResourceDefinition (kubectl apply -f {CrdGenerator.CommittedPath}).");
        command.SetAction(parseResult =>
        {
            parseResult.InvocationConfiguration.Output.Write(CrdGenerator.Generate());
            return Program.Success;
        });
        return command;
    }
}
