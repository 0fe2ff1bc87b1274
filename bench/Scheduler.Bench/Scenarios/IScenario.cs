using Dtask.Bench.Report;

namespace Dtask.Bench.Scenarios;

/// <summary>One benchmark scenario, selected by its <see cref="Name"/>.</summary>
internal interface IScenario
{
    /// <summary>Its name (<c>make bench BENCH=name</c>).</summary>
    string Name { get; }

    /// <summary>Runs it.</summary>
    Task<ScenarioResult> RunAsync(CancellationToken cancellationToken);
}
